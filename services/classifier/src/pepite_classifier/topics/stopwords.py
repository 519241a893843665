"""Words that never name a topic: English and French function words and chat filler.

sklearn's English list covers function words; French and the filler of chat messages
("hi", "anyone", "merci", "svp") are added here, since they would otherwise top the
keywords of every category.
"""

from __future__ import annotations

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_FRENCH = """
a à afin ai aie aient aies ait alors as au aucun aucune auquel aura aurai auraient aurais
aurait auras aurez auriez aurons auront aussi autre autres aux auxquelles auxquels avaient
avais avait avant avec avez aviez avions avoir avons ayant ayez ayons bah ben bon c ça car
ce ceci cela celle celles celui cependant ces cet cette ceux chaque chez ci comme comment d
dans de des depuis devrait dois doit donc dont du elle elles en encore entre es est et étaient
étais était étant été êtes étiez étions être eu eue eues eûmes eurent eus eusse eussent eusses
eussiez eussions eut eût eux faire fais fait faut fois furent fus fusse fussent fûmes fut fût
ici il ils j je jusqu jusque l la là laquelle le lequel les lesquelles lesquels leur leurs lui
m ma mais me même mêmes mes moi mon n ne ni non nos notre nous on ont ou où par parce pas
peu peut peux plus pour pourquoi puis qu quand que quel quelle quelles quels qui quoi s sa
sans se sera serai seraient serais serait seras serez seriez serons seront ses si sien soi
soient sois soit sommes son sont sous suis sur t ta te tes toi ton tous tout toute toutes
très tu un une unes uns va vais vas voici voilà vont vos votre vous vu y
"""

_CHAT = """
hi hello hey hiya yo heya thanks thank thx ty tia cheers please pls plz ok okay k yeah yep
yes yup nope nah lol lmao haha hah heh hmm hm uh um oh ah wow anyone anybody someone somebody
guys folks know knows think thought help helps helped question questions ask asking asked
just like really actually maybe probably sure try tried trying want wants wanted need needs
needed get gets got getting use used using way thing things stuff work works worked working
does did doing make makes made good great nice cool time way let lets im ive id dont doesnt
didnt isnt cant wont wouldnt couldnt shouldnt youre theyre thats whats theres don doesn didn
isn aren wasn weren haven hasn hadn won wouldn couldn shouldn ve ll re d s t m
bonjour salut coucou merci svp stp oui ouais non ok voilà quelqu quelqu'un truc trucs chose
choses faire fait besoin aide aider question savoir sais sait veux veut peux pouvez
"""

#: Lower-case words never used in topic keywords.
STOP_WORDS: frozenset[str] = frozenset(ENGLISH_STOP_WORDS) | frozenset((_FRENCH + _CHAT).split())
