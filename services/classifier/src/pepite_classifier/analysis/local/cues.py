"""Surface cues (English and French) for the kinds no labeled data covers.

A cue is a list of phrases: lower-cased tokens separated by spaces, where any number is
written ``<num>``. ``Cues.of`` tokenizes a message once and looks every token sequence up
in one dictionary of all phrases: a regular expression per cue cost several times more
than every other feature together on short chat lines. Links are checked by regular
expressions only when the text has a dot.

The cues feed the documented rules in ``rules``: thanks -> gratitude, "good luck" ->
encouragement, crypto giveaway patterns -> scam, and so on. Phrases favour precision: a
missed cue falls back on the trained heads and on ``social``, a wrong one mislabels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import product


def _expand(*templates: str) -> tuple[str, ...]:
    """Phrases from templates where ``a|b`` inside braces lists alternatives:
    ``"{can|could} you add"`` gives ``"can you add"`` and ``"could you add"``."""
    phrases: list[str] = []
    for template in templates:
        parts = re.split(r"\{([^}]*)\}", template)
        choices = [part.split("|") if index % 2 else [part] for index, part in enumerate(parts)]
        for combination in product(*choices):
            phrases.append(re.sub(r"\s+", " ", "".join(combination)).strip())
    return tuple(phrases)


_NEGATED = "{doesn't|doesnt|does not|don't|dont|do not|won't|wont|will not|isn't|isnt|is not|can't|cant|cannot|can not|couldn't|couldnt|didn't|didnt|wasn't|wasnt|aren't|not|no longer|never}"  # noqa: E501
_BROKEN_VERB = "{work|works|working|load|loading|start|starting|boot|booting|open|connect|show|showing|compile|run|running|install|find|see|detect|recognize|recognise|mount|respond|sync|save|update|play|print}"  # noqa: E501

PHRASES: dict[str, tuple[str, ...]] = {
    "thanks_in_advance": _expand(
        "{thanks|thank you|thx|ty} in advance",
        "tia",
        "merci {d'avance|par avance|d'avance pour}",
    ),
    "gratitude": _expand(
        "thanks",
        "thank",
        "thank you",
        "thankyou",
        "thanx",
        "thnx",
        "thx",
        "tyvm",
        "ty",
        "tysm",
        "much appreciated",
        "appreciate {it|that|this|your help|the help}",
        "i appreciate",
        "cheers",
        "merci",
        "mercii",
        "merci beaucoup",
        "je vous remercie",
        "je te remercie",
        "remerciements",
        "danke",
        "gracias",
        "grazie",
        "obrigado",
        "obrigada",
    ),
    "encouragement": _expand(
        "good luck",
        "best of luck",
        "keep it up",
        "keep up the {good|great} work",
        "you {got|'ve got|have got} this",
        "you got it",
        "hang in there",
        "{don't|dont|do not} give up",
        "well done",
        "{great|good|nice} {job|work}",
        "congrats",
        "congratulations",
        "proud of you",
        "you can do it",
        "bon courage",
        "courage",
        "bonne chance",
        "{continue|continuez} comme ça",
        "{lâche|lache|lâchez|lachez} rien",
        "{tu vas|vous allez} y arriver",
        "bien {joué|joue}",
        "bravo",
        "félicitations",
        "felicitations",
        "chapeau",
    ),
    "chatter": _expand(
        "{hi|hii|hey|heya|hello|helo|hallo|yo|howdy|sup|gm|gn|bye|cya|brb|afk|welcome}",
        "good {morning|afternoon|evening|night}",
        "see {you|ya}",
        "{lol|lool|lmao|rofl|haha|hahaha|hehe|xd|:)|:d|;)|:p}",
        "{ok|okay|k|kk|yes|yeah|yep|yup|no|nope|nah|sure|cool|nice|right|indeed|true}",
        "{bonjour|bonsoir|salut|coucou|hello|yo}",
        "{mdr|ptdr|oui|ouais|non|ok|okay|d'accord|daccord|bien sûr|carrément|grave}",
        "à plus",
        "a plus",
        "bonne {journée|soirée|nuit}",
    ),
    "announcement": _expand(
        "{we are|we're} {happy|excited|pleased|thrilled|proud} to announce",
        "{announce|announces|announced|announcing|announcement}",
        "[ann]",
        "just released",
        "{is|are} {out|live} now",
        "{is|are} now {out|live|available}",
        "now available",
        "{new release|new version} {is|} {out|available|released}",
        "release {note|notes}",
        "changelog",
        "{scheduled maintenance|maintenance window}",
        "reminder",
        "friendly reminder",
        "meeting {starts|starting|will start|is starting}",
        "starting now",
        "@everyone",
        "@here",
        "nous sommes {heureux|ravis|fiers} {de|d'}",
        "{annonce|annonçons|annoncer}",
        "nouvelle version {est|} {disponible|sortie|publiée}",
        "{est|sont} {maintenant|désormais} {disponible|disponibles}",
        "rappel",
        "mise à jour disponible",
    ),
    "scam": _expand(
        "free {discord|steam} nitro",
        "free nitro",
        "nitro for free",
        "discord nitro",
        "steam gift",
        "free {robux|vbucks|v-bucks|skins|crypto|btc|bitcoin|eth|usdt|nft|nfts}",
        "airdrop",
        "claim {your|now|it here|the reward|your reward|your prize}",
        "giveaway",
        "double your {money|btc|bitcoin|eth|crypto|investment}",
        "send {me|} {<num>|} {btc|eth|usdt|bitcoin|crypto}",
        "{guaranteed|daily} {profit|profits|returns|return|income}",
        "investment {opportunity|plan}",
        "{earn|make|making|earning} {$|} <num> {$|€|usd|dollars|} {per|a|every} {day|week|hour}",
        "wallet {connect|verification|validation|sync}",
        "verify your {wallet|account}",
        "{seed|recovery} phrase",
        "dm me {for|to} {earn|invest|profit|the link}",
        "limited {time offer|offer}",
        "crypto {signals|trading|investment}",
        "forex",
        "binary options",
        "{gagne|gagnez|gagner} <num> {€|euros|euro} par {jour|semaine}",
        "cadeau gratuit",
        "nitro gratuit",
        "{investissement|rendement} garanti",
        "{profit|profits} {garanti|garantis}",
        "{réclame|réclamez|reclame|reclamez} {ton|votre} {cadeau|gain|prix}",
        "phrase de récupération",
    ),
    "spam": _expand(
        "buy now",
        "click here",
        "{cheap|cheapest}",
        "discount",
        "{promo|promotion} code",
        "coupon",
        "{best|lowest} price",
        "order now",
        "limited stock",
        "<num> % free",
        "work from home",
        "{viagra|casino|betting}",
        "{buy|cheap|free} followers",
        "cliquez ici",
        "{achetez|achète|achete}",
        "code promo",
        "prix {bas|cassé|cassés}",
    ),
    "self_promotion": _expand(
        "{check out|subscribe to|sub to|follow|like} my",
        "my {youtube|twitch|tiktok|instagram|patreon|podcast|newsletter} {channel|}",
        "{please subscribe|follow me|like and subscribe|smash that like}",
        "shameless plug",
        "join {my|our} {discord|server} {httpurl|}",
        "ma chaîne",
        "{abonnez-vous|abonne-toi|abonnez vous}",
        "rejoignez {mon|notre} serveur",
    ),
    "showcase": _expand(
        "my new {app|game|project|startup|course|book|shop|store|website|site|product|video}",
        "i {just|} {made|built|created|launched|released|wrote} {a|an|my|this}",
        "mon nouveau {projet|blog|site|serveur|jeu|livre|podcast|stream}",
        "ma nouvelle {app|application|vidéo|boutique}",
        "j'ai {créé|lancé|publié|cree|lance} {un|une|mon|ma}",
    ),
    "problem": _expand(
        "{error|errors|exception|traceback|segfault|crash|crashes|crashed|crashing}",
        "{bug|bugs|buggy|broken|fail|fails|failed|failing|failure}",
        f"{_NEGATED} {_BROKEN_VERB}",
        "{stopped|stops} working",
        "{stuck|freeze|freezes|freezing|froze|frozen|hangs|hanging}",
        "unable to",
        "segmentation fault",
        "no {sound|audio|internet|network|wifi|signal|video|display}",
        "permission denied",
        "not found",
        "{issue|issues|problem|problems|wrong}",
        "{erreur|erreurs|plante|planté|plantage|bug|bugue|bugué|buggé|bloqué|cassé|panne}",
        "{ne|n'} {marche|fonctionne|démarre|charge|s'ouvre|s'affiche|s'allume} {pas|plus}",
        "{marche|fonctionne} {pas|plus}",
        "impossible de",
        "{problème|problèmes|souci|soucis}",
    ),
    "feature_request": _expand(
        "feature request",
        "{would|it'd|itd|it would} be {nice|great|cool|awesome|good|helpful|useful}",
        "{please|pls|plz|could you|can you|would you} {add|support|implement|allow|include}",
        "add {support|an option|a setting|a way|the ability|a button|a feature}",
        "{should|could} {support|allow|add} {a|an|the|}",
        "{an|any} option to",
        "ability to",
        "i wish",
        "wishlist",
        "would love {to see|it if|if}",
        "{suggestion|proposal|request}",
        "{ce|ça|ca} serait {bien|top|cool|génial|pratique|utile}",
        "il faudrait",
        "{pourriez-vous|pourrais-tu|pouvez-vous|peux-tu|pourriez vous|pouvez vous} ajouter",
        "ajouter {une|un|la|le} {option|possibilité|fonction|fonctionnalité|bouton}",
        "j'aimerais {bien|} {que|pouvoir|avoir}",
        "possibilité de",
    ),
    "confusion": _expand(
        "{confused|confusing}",
        "{don't|dont|do not} {understand|get it|get why|know why}",
        "no idea",
        "how come",
        "{makes|make} no sense",
        "i'm lost",
        "{je|} {ne|} {comprends|comprend} pas",
        "je suis perdu",
        "aucune idée",
        "ça veut dire quoi",
    ),
    "frustration": _expand(
        "{still|again|seriously|ugh|ugh!|argh|wtf|annoying|frustrating|frustrated}",
        "tried everything",
        "for {hours|days|ages}",
        "{fed up|sick of}",
        "toujours pas",
        "{j'en ai marre|ras le bol|marre|énervant|galère}",
        "depuis des heures",
    ),
    "anxiety": _expand(
        "{urgent|urgently|asap|worried|afraid|scared|panic|panicking|deadline}",
        "lost {all|} my {data|files|work}",
        "please help",
        "{inquiet|inquiète|peur|urgent}",
        "au secours",
        "à l'aide",
    ),
    "sadness": _expand(
        "{sad|heartbroken|depressed|rip}",
        "miss {you|him|her|them|it}",
        "passed away",
        "{triste|déprimé|déprimée|décédé}",
    ),
    "joy": _expand(
        "{yay|woohoo|wooho|awesome|amazing|excited|finally}",
        "so happy",
        "love {it|this}",
        "{génial|youpi|enfin}",
        "trop {bien|content|contente}",
    ),
    "instructive": _expand(
        "you {can|could|should|must} {use|try|run|install|check|set|add|just|do|type|edit}",
        "you {need|have|might want|may want} to",
        "you'll {need|want|have}",
        "{sudo|apt install|apt-get install|apt get install}",
        "the {command|option|setting|flag} is",
        "it's in",
        "instead",
        "tu {peux|dois|devrais}",
        "vous {pouvez|devez|devriez}",
        "il {faut|suffit}",
    ),
    "resource": _expand(
        "{docs|documentation|wiki|guide|tutorial|article|readme|manual|tuto|tutoriel}",
        "man page",
        "here's {a|the|an}",
        "here is",
        "this {link|page|post|video|thread}",
        "{voici|ce lien}",
    ),
    "asking": _expand(
        "{how|what|why|when|where|which|who|whom|whose}",
        "{is|are|am|was|were|do|does|did|can|could|should|would|will|has|have|had|shall|may}"
        " {i|you|we|they|he|she|it|there|this|that|anyone|anybody|someone|somebody|one}",
        "{anyone|anybody|someone|somebody} {know|knows|here|got|have|has|tried|else|familiar}",
        "any {idea|ideas|clue|way|chance|reason|tips|suggestions|recommendations}",
        "is there {a|an|any|some}",
        "how to",
        "i {wonder|was wondering}",
        "wondering {if|whether|how|why}",
        "can't figure out",
        "not sure {how|why|what|if|whether}",
        "{comment|pourquoi|quand|où|combien|quel|quelle|quels|quelles|quoi|qui}",
        "est-ce {que|qu'}",
        "{quelqu'un|qqn} {sait|a|connaît|connait|peut|aurait|pourrait}",
        "{savez-vous|sais-tu|connaissez-vous|connais-tu|pouvez-vous|peux-tu|avez-vous|as-tu}",
        "{y a-t-il|y'a t'il|il y a moyen}",
        "je me demande",
        "une idée",
    ),
    "second_person": _expand("{you|your|you're|u|ur|tu|toi|vous|ton|ta|tes|t'es}"),
}

#: Every phrase -> the cues it signals, and every proper prefix of a phrase.
_PHRASE_CUES: dict[str, tuple[str, ...]] = {}
_PREFIXES: set[str] = set()
for _cue, _phrases in PHRASES.items():
    for _phrase in _phrases:
        _PHRASE_CUES[_phrase] = (*_PHRASE_CUES.get(_phrase, ()), _cue)
        _words = _phrase.split(" ")
        _PREFIXES.update(" ".join(_words[:n]) for n in range(1, len(_words)))
_LONGEST = max(len(phrase.split(" ")) for phrase in _PHRASE_CUES)

#: Verbs that give an instruction when they open a message (after an addressee):
#: "try rebooting", "nick: use gparted", "essaie de redémarrer".
IMPERATIVE_OPENERS: frozenset[str] = frozenset(
    [
        "try",
        "use",
        "run",
        "install",
        "type",
        "check",
        "open",
        "click",
        "edit",
        "remove",
        "set",
        "see",
        "read",
        "look",
        "go",
        "add",
        "make",
        "put",
        "enable",
        "disable",
        "reboot",
        "restart",
        "update",
        "upgrade",
        "download",
        "purge",
        "reinstall",
        "boot",
        "mount",
        "unmount",
        "select",
        "press",
        "hit",
        "change",
        "rename",
        "delete",
        "copy",
        "move",
        "paste",
        "pastebin",
        "ask",
        "google",
        "essaie",
        "essaye",
        "essayez",
        "utilise",
        "utilisez",
        "lance",
        "lancez",
        "installe",
        "installez",
        "tape",
        "tapez",
        "va",
        "allez",
        "regarde",
        "regardez",
        "vérifie",
        "vérifiez",
        "fais",
        "faites",
        "mets",
        "mettez",
        "redémarre",
        "redémarrez",
        "clique",
        "cliquez",
        "ouvre",
        "ouvrez",
        "supprime",
        "supprimez",
    ]
)
_ADDRESSEE_RE = re.compile(r"^\s*@?[\w\-\[\]`^{}|.]{1,32}[:,]\s")

_TOKEN_RE = re.compile(r"[@#]?\w+(?:'\w+)*'?|[$€?!%]|[:;][)dp(]|\[ann\]")
_NUMBER_RE = re.compile(r"\d")
_ELONGATION_RE = re.compile(r"(\w)\1{2,}")

#: Look-alike domains of well-known services, a classic phishing trick.
PHISHING_LINK = re.compile(
    r"(?:(?!discord\.)d[il1]sc[o0]r(?:d|cl)|discord-?(?:gift|nitro)|discrod)[\w-]*\.[a-z]{2,}"
    r"|steamcomm?unity\.(?!com)|steamcomunity|stearncommunity"
)
INVITE_LINK = re.compile(
    r"(?:discord\.gg|discord(?:app)?\.com/invite|t\.me|chat\.whatsapp\.com)/\S+"
)

#: Words that open a question in English or French, for reading a reply's parent.
QUESTION_OPENER = re.compile(
    r"^\W*(?:how|what|why|when|where|which|who|whom|whose|is|are|am|was|were|do|does|did|"
    r"can|could|should|would|will|has|have|had|any(?:one|body)|comment|pourquoi|quand|où|"
    r"quel(?:le)?s?|qui|est-ce|combien|peut-on|puis-je|savez-vous|sais-tu)\b"
)


def tokenize(lowered: str) -> list[str]:
    """Tokens as the phrases write them: curly apostrophes straightened, numbers as
    ``<num>``, letters repeated three times or more cut to two ("thankssss" -> "thankss")."""
    text = _ELONGATION_RE.sub(r"\1\1", lowered.replace("’", "'"))
    return ["<num>" if _NUMBER_RE.search(t) else t for t in _TOKEN_RE.findall(text)]


@dataclass(frozen=True)
class Cues:
    """Which cues a message shows, read once per message."""

    gratitude: bool = False
    thanks_in_advance: bool = False
    encouragement: bool = False
    chatter: bool = False
    announcement: bool = False
    scam: bool = False
    phishing_link: bool = False
    invite_link: bool = False
    spam: bool = False
    self_promotion: bool = False
    problem: bool = False
    feature_request: bool = False
    instructive: bool = False
    resource: bool = False
    confusion: bool = False
    frustration: bool = False
    anxiety: bool = False
    sadness: bool = False
    joy: bool = False
    second_person: bool = False
    #: A personal project or creation ("my new app", "j'ai créé"): promotion with a link.
    showcase: bool = False
    #: An interrogative word, an inverted auxiliary ("can you", "is there") or a phrase
    #: that asks ("anyone know", "quelqu'un sait").
    asking: bool = False
    #: Tokens that no cue phrase covers, so ``chatter`` can tell "lol ok" from "lol the
    #: driver is broken".
    uncovered_tokens: int = 0

    @classmethod
    def of(cls, lowered: str, tokens: Sequence[str] | None = None) -> Cues:
        """The cues of a lower-cased text (``tokens``: its ``tokenize``, when known)."""
        if tokens is None:
            tokens = tokenize(lowered)
        found: dict[str, bool | int] = {}
        covered_until = 0
        uncovered = 0
        for start in range(len(tokens)):
            key = tokens[start]
            end = start + 1
            while True:
                cues = _PHRASE_CUES.get(key)
                if cues is not None:
                    for cue in cues:
                        found[cue] = True
                    covered_until = max(covered_until, end)
                if key not in _PREFIXES or end >= len(tokens) or end - start >= _LONGEST:
                    break
                key = f"{key} {tokens[end]}"
                end += 1
            if covered_until <= start and tokens[start] not in "?!":
                uncovered += 1
        found["uncovered_tokens"] = uncovered
        if tokens:
            opener = tokens[1] if len(tokens) > 1 and _ADDRESSEE_RE.match(lowered) else tokens[0]
            if opener in IMPERATIVE_OPENERS:
                found["instructive"] = True
        if "." in lowered:
            # Links are rare in chat: their patterns only run when one may be there.
            found["phishing_link"] = PHISHING_LINK.search(lowered) is not None
            found["invite_link"] = INVITE_LINK.search(lowered) is not None
        return cls(**found)  # type: ignore[arg-type]


CUE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Cues) if f.type in ("bool", bool))


def looks_like_question(text: str) -> bool:
    """A cheap reading of a reply's parent: does it ask something?"""
    stripped = text.strip().lower()
    return (
        stripped.endswith("?") or "? " in stripped or QUESTION_OPENER.search(stripped) is not None
    )
