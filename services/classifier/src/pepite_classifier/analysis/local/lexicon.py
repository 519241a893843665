"""Hand-written English and French word lists the local analyzer uses as features.

The labeled sentiment sets hold a few thousand texts each: too few for a linear model to
learn the polarity of every common opinion word from n-grams alone. A prior polarity
lexicon gives every such word a shared feature, the way classic tweet sentiment systems
do. Words are matched as lower-cased whole tokens; a negator up to three tokens before a
word flips it ("not good", "pas terrible" is handled as an idiom below).

The French insult and slur lists back the ``toxicity`` and ``hate`` scores for French,
which has no labeled training data: a message with one of these words gets a floor (see
``rules``). They hold insults and slurs only (no mild swearing such as "merde" used as an
interjection, no "con", which is also a word of other languages), so that a frustrated
"ça marche pas, merde" is not reported as abuse.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence


def _word_set(words: str) -> frozenset[str]:
    """The whitespace-separated words of a block of text."""
    return frozenset(words.split())


POSITIVE_WORDS: frozenset[str] = _word_set(
    """
    good great awesome amazing excellent fantastic wonderful brilliant superb perfect nice
    cool love loved loves lovely loving lovin luv enjoy enjoyed enjoying enjoys fun funny
    happy happier happiest happily glad pleased delighted excited exciting thrilled proud
    best better beautiful gorgeous cute sweet kind helpful useful easy easier smooth fast
    fine solid stable clean elegant impressive impressed incredible outstanding terrific
    fabulous marvelous marvellous win won winning wins winner winners success successful
    successfully congrats congratulations thanks thank thankful thx ty appreciate
    appreciated appreciation grateful blessed blessing blessings hope hoping hopeful
    hopefully yay yaay woohoo wooo wow yes yeah yep yess favorite favourite fave recommend
    recommended safe fixed solved resolved agree agreed correct lucky luck enjoyable
    pleasure pleasant cheers welcome celebrate celebrating celebration birthday bday party
    partying interesting inspiring inspired inspiration support supported supporting
    supportive honored honoured honor fresh epic legendary stoked hyped dope rocks rocked
    haha hahaha hahahaha lol lmao xd :) :-) :d ;) <3 glory glorious victory triumph
    adorable charming delightful fine gracious generous genius gifted handsome healthy
    heaven heavenly hero heroes hilarious holiday holidays hug hugs joy joyful joyous
    kiss kisses laugh laughing laughs magic magical masterpiece merry miracle nicely
    paradise peace peaceful perfection perfectly phenomenal play playing positive
    powerful precious pretty prize promising proudly proud rejoice relax relaxed relaxing
    reliable remarkable respect respected rich satisfied satisfying sexy shine shining
    smart smile smiles smiling special spectacular splendid stellar strong stunning
    stylish superb superior supreme sunny sunshine talent talented thrill thrilling tasty
    delicious yummy top treasure true trust trusted ultimate unbelievable unforgettable
    valuable vibrant victorious warm wealthy well wholesome wisdom wise wonder wonderfully
    worth worthy wow excite excites beloved bliss blissful bravo calm celebrated champion
    champions cheerful classy comfortable comfy confident cozy creative dazzling
    dear dearest divine dream dreams dreamy eager easygoing ecstatic elated enjoyment
    enthusiastic excellence exceptional exquisite fab fabulous faith fancy fantastically
    fascinating favor favour fortunate free freedom friend friendly friends friendship
    fulfilled gain gains gem goodness grand grateful greatest happiness harmony heartwarming
    ideal improve improved improvement incredible innovative joke kudos likes liked
    lit loyal luckily marvel memorable motivated motivation nicest optimistic outstanding
    overjoyed passion passionate patience perfect pleasing plus popular praise praised
    prosperous proudest radiant refreshing relief relieved romantic rocking rockstar
    savvy secure sensational serene sincere skilled soulful sparkling stoked success
    superstar supporter sure surprise surprised sweetest terrific thanksgiving thriving
    tremendous tops upbeat uplifting useful victory vivid welcoming willing winning wins
    bon bonne bons bonnes bien super génial géniale géniaux geniale genial excellent
    excellente excellents parfait parfaite parfaits magnifique magnifiques superbe superbes
    beau belle beaux belles jolie joli jolis merveilleux merveilleuse adore adoré adorée
    adorer adorable aime aimé aimée aimer aimons plaisir heureux heureuse heureusement ravi
    ravie ravis content contente contents contentes fier fière fiers bravo félicitations
    felicitations félicite merci chouette top extra formidable incroyable impressionnant
    impressionnante réussi réussie réussite réussir succès victoire gagné gagne gagner
    gagnant efficace utile facile rapide fluide stable propre sympa sympathique agréable
    enchanté enchantée hâte vivement espoir espère espérons bienvenue bonheur joie joyeux
    joyeuse mieux meilleur meilleure meilleurs meilleures résolu résolue réglé corrigé
    oui ouais chapeau kiffe kiffer recommande génialissime mdr ptdr fête fêter amour amoureux
    ami amis amitié paix beauté brillant brillante cadeau champion champions chance
    confiance courage délicieux douce doux drôle éclater enthousiaste espérer exceptionnel
    exceptionnelle fabuleux fantastique favorable fière gentil gentille grandiose
    honneur intéressant intéressante magique merveille optimiste passion positif positive
    progrès prometteur qualité réjouir remercie rire sourire soutien splendide succès
    talent talentueux unique vainqueur victoire vive youpi
    """
)

NEGATIVE_WORDS: frozenset[str] = _word_set(
    """
    bad badly worse worst awful terrible terribly horrible horribly horrid poor poorly sad
    sadly sadness unhappy angry anger mad annoyed annoying annoys annoy frustrated
    frustrating frustration hate hated hates hating hater haters hatred dislike dislikes
    disappointed disappointing disappointment disappoints fail failed fails failing failure
    broken break breaks crash crashed crashes crashing bug buggy bugs error errors wrong
    issue issues problem problems slow slower sucks suck sucked stupid dumb useless
    pointless ugly boring bored hard difficult confusing confused confusion lost stuck
    nightmare mess messy disaster disastrous horrendous pathetic ridiculous shame shameful
    sorry unfortunately unfortunate worried worry worrying worries scared scary afraid
    fear fears feared anxious anxiety nervous upset cry crying cried tears hurt hurts
    hurting pain painful sick ill tired exhausted killed kill kills killing killer dead
    death deaths die died dies dying attack attacks attacked war wars violence violent
    crisis tragic tragedy victims victim injured injury lose losing loss losses loser miss
    missed missing cancel cancelled canceled delay delayed late wtf damn ugh argh meh fml
    smh rip worthless trash garbage crap crappy shit shitty fuck fucking fucked bullshit
    regret regrets complaint complain complaining complains disgusting disgusted gross
    hell jerk idiot idiots scam fraud fake lies lie liar liars :( :-( ;( :'( abuse abused
    abusive alarming alone anguish apathy appalling arrogant ashamed atrocious awkward
    bitter blame blamed bleak bloody boycott brutal burden careless catastrophe chaos
    cheat cheated cheating clumsy collapse corrupt corruption coward crappy creepy crime
    crimes criminal critical cruel crushed cursed damage damaged danger dangerous
    deadly decline defeat defeated defective deficit degrading delete denied depressed
    depressing depression desperate despair destroy destroyed destruction devastated
    devastating dirty disgrace dishonest dismal disturbed disturbing doom doomed dread
    dreadful dull embarrassed embarrassing enemy evil exhausting fatal fault faulty
    fearful filthy flawed foolish frightened frightening furious grief grim gross guilty
    harm harmful harsh heartbreaking heartbroken helpless hopeless horrific hostile
    humiliated hungry hurtful ignorant ignored illegal immoral impossible inadequate
    incompetent inferior insane insult insulted insulting irritated irritating jealous
    lame lazy lonely loose lousy mediocre melancholy miserable misery mistake mistakes
    moody mourn mourning murder murdered nasty negative neglected nervous noisy obnoxious
    offended offensive outrage outraged outrageous overpriced panic paranoid poverty
    problematic protest punish rage racist rejected rejection resent ridicule rotten rude
    ruin ruined ruins sarcastic savage scandal scream screwed selfish severe shock shocked
    shocking sicken sickening sinister skeptical sloppy sorrow spoiled stolen stress
    stressed stressful struggle struggling suffer suffered suffering suicide suspicious
    tense terrified terror terrorist terrorism threat threaten threatened tragic trapped
    trouble troubled ugh unacceptable unfair unfortunate unhealthy unpleasant unreliable
    unstable upsetting vicious waste wasted weak weird wicked worn worried worse wreck
    wrecked wrong yikes boo booo lag laggy glitch glitchy unusable bloated expensive
    overrated overpriced refund hacked malware spam
    mauvais mauvaise mauvaises nul nulle nuls nulles pire pires horrible horribles affreux
    affreuse terrible terribles triste tristes tristesse déçu déçue déçus déception
    décevant décevante colère énervé énervée énervant énervante agaçant agaçante marre
    ras-le-bol fatigué fatiguée fatigant galère galérer bugué buggé plante planté crash
    erreur erreurs problème problèmes panne cassé cassée lent lente lenteur inutile
    ridicule honte honteux honteuse scandale scandaleux scandaleuse dommage hélas
    malheureusement inquiet inquiète inquiétude inquiétant inquiétante peur angoisse
    angoissé stress stressé stressée peine mal douleur malade mort morts morte tué tués
    victime victimes attentat attentats guerre violence violences crise catastrophe
    catastrophique drame dramatique danger dangereux dangereuse menace menaces perdu
    perdue perte pertes échec échoué raté ratée chiant chiante chiants pourri pourrie
    merde putain bordel dégoûtant dégoûté dégoûtée insupportable inadmissible inacceptable
    injuste injustice pollution polluant chômage licenciement licenciements hausse grève
    abandon abandonné absurde accident agression arnaque attaque blessé blessés bête
    cauchemar choc chute conflit corruption coupable crime criminel cruel débile déprime
    déprimé désastre désespoir destruction détruit difficile difficultés dur échecs
    effrayant embêtant ennui ennuyeux épouvantable exaspérant faible faillite fatigue
    faute faux fraude furieux gâché grave haine hideux hontes honteusement horreur
    humiliation idiot ignoble illégal impossible incompétent inégalités inquiète
    insécurité intolérable lamentable laid lâche malheur malheureux manque mensonge
    menteur mépris meurtre misère moche mourir navrant négatif nuisible odieux pauvre
    pauvreté pénible perdre pitié pleurer pleure polémique précarité raciste rage
    regrette regret rejet répugnant révoltant ruine sale souffrance souffrir stupide
    suicide terreur terroriste terrorisme tragique trahison triste tristement tuer
    urgence vide violent violente vol vulgaire
    """
)

NEGATORS: frozenset[str] = _word_set(
    """
    not no never nothing nobody none neither nor cannot cant can't don't dont doesn't
    doesnt didn't didnt isn't isnt wasn't wasnt won't wont wouldn't shouldn't aren't
    ain't without pas jamais rien aucun aucune ni sans
    """
)

#: Two-word idioms whose polarity is not that of their words.
POSITIVE_IDIOMS: tuple[str, ...] = (
    "pas mal",
    "not bad",
    "no problem",
    "no worries",
    "pas de souci",
    "pas de problème",
    "sans souci",
    "can't wait",
    "cant wait",
    "trop bien",
    "trop cool",
)
NEGATIVE_IDIOMS: tuple[str, ...] = (
    "pas terrible",
    "ne marche pas",
    "marche pas",
    "fonctionne pas",
    "doesn't work",
    "does not work",
    "not working",
    "don't like",
    "not good",
)

#: English profanity, insults and slurs, with common spellings: the words that made the
#: toxicity head's training tweets offensive. A text without any of them has its
#: toxicity damped (see ``rules``): on chat unlike those tweets the head hovers near 0.5.
ENGLISH_ABUSE: frozenset[str] = _word_set(
    """
    fuck fucks fucked fucker fuckers fuckin fucking fuckk fck fcking fk fuk fukin motherfucker
    motherfuckers mf mfs wtf stfu gtfo shit shits shitty shitting bullshit crap crappy damn
    dammit goddamn ass asses asshole assholes arse arsehole dumbass jackass bitch bitches
    bitchy bitchass biatch bish hoe hoes ho thot thots slut sluts whore whores skank pussy
    pussies cunt cunts dick dicks dickhead cock cocks cocksucker prick twat wanker bastard
    bastards douche douchebag scumbag idiot idiots idiotic moron morons moronic stupid dumb
    retard retards retarded loser losers pathetic ugly fat trash garbage scum freak freaks
    nigga niggas nigger niggers nig negro coon coons spic spics wetback chink chinks gook
    beaner kike raghead towelhead faggot faggots fag fags dyke dykes tranny homo homos queer
    queers sissy cracker crackers redneck rednecks hillbilly hillbillies ghetto jigaboo
    monkey monkeys ape apes hate hateful suck sucks sucker suckers piss pissed bollocks tits
    titties boobs
    """
)

#: French insults (with common spellings). Back French ``toxicity``, see above.
FRENCH_INSULTS: frozenset[str] = _word_set(
    """
    connard connards connasse connasses conne abruti abrutie abrutis crétin crétine
    crétins débile débiles imbécile imbéciles idiot idiote idiots enculé enculée enculés
    enculer encule salaud salauds salope salopes salopard salopards pute putes fdp ntm
    nique niquer niquez batard bâtard bâtards batards bouffon bouffons ordure ordures
    pourriture raclure raclures merdeux merdeuse tocard tocards tocarde cassos
    ta_gueule ferme_ta_gueule va_crever crève_connard va_te_faire fils_de_pute
    sale_con espèce_de pauvre_con gros_con
    """
)
#: French slurs: insults aimed at a group, which also back French ``hate``.
FRENCH_SLURS: frozenset[str] = _word_set(
    """
    pd pédé pédés tapette tapettes gouine gouines bougnoule bougnoules négro négros bicot
    bicots youpin youpins sale_arabe sale_noir sale_juif sales_arabes sales_noirs
    sales_juifs
    """
)

_TOKEN_RE = re.compile(r"[\w'’-]+|:-?[()dDpP]|;-?\)|<3|:'\(")


def tokens(text: str) -> list[str]:
    """Lower-cased tokens: words (keeping inner apostrophes and hyphens) and emoticons."""
    return [token.replace("’", "'") for token in _TOKEN_RE.findall(text.lower())]


def _joined_pairs(words: list[str]) -> set[str]:
    return {f"{a}_{b}" for a, b in itertools.pairwise(words)}


def polarity_counts(text: str) -> tuple[int, int]:
    """(positive, negative) opinion words and idioms in ``text``, negated words flipped."""
    words = tokens(text)
    lowered = " ".join(words)
    positive = sum(idiom in lowered for idiom in POSITIVE_IDIOMS)
    negative = sum(idiom in lowered for idiom in NEGATIVE_IDIOMS)
    for index, word in enumerate(words):
        stem = word.split("'")[-1] if "'" in word and word not in NEGATORS else word
        is_positive = stem in POSITIVE_WORDS
        is_negative = stem in NEGATIVE_WORDS
        if not (is_positive or is_negative):
            continue
        negated = any(previous in NEGATORS for previous in words[max(0, index - 3) : index])
        if is_positive != negated:
            positive += 1
        else:
            negative += 1
    return positive, negative


def english_abuse(words: Sequence[str]) -> int:
    """How many of the lower-cased ``words`` are English profanity, insults or slurs."""
    return sum(word in ENGLISH_ABUSE for word in words)


def french_abuse(words: Sequence[str]) -> tuple[int, int]:
    """(insults, slurs) among lower-cased ``words`` and their two-word phrases."""
    pairs = _joined_pairs(list(words))
    slurs = sum(word in FRENCH_SLURS for word in words) + len(pairs & FRENCH_SLURS)
    insults = sum(word in FRENCH_INSULTS for word in words) + len(pairs & FRENCH_INSULTS)
    return insults + slurs, slurs
