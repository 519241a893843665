"""The FAQ knowledge base: entries, their storage, retrieval and answers."""

from pepite_knowledge.answering import (
    DEFAULT_CONFIDENCE_THRESHOLD,
    FOLLOW_UP,
    CurveUsed,
    KnowledgeBase,
    Reply,
    Source,
    curve_for,
    reply_from,
)
from pepite_knowledge.calibration import (
    CALIBRATION,
    KNOWLEDGE_CALIBRATIONS,
    Calibration,
    CalibrationRepository,
    CommunityCalibration,
)
from pepite_knowledge.models import (
    MAX_ANSWER_CHARS,
    MAX_QUESTION_CHARS,
    EntryChannel,
    EntryOrigin,
    EntrySignals,
    KnowledgeEntry,
    mined_entry_id,
)
from pepite_knowledge.repository import (
    KNOWLEDGE_INDEXES,
    EntryVectors,
    KnowledgeRepository,
    StoredEntry,
    embed_entries,
)
from pepite_knowledge.retrieval import KnowledgeIndex, Match

__all__ = [
    "CALIBRATION",
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "FOLLOW_UP",
    "KNOWLEDGE_CALIBRATIONS",
    "KNOWLEDGE_INDEXES",
    "MAX_ANSWER_CHARS",
    "MAX_QUESTION_CHARS",
    "Calibration",
    "CalibrationRepository",
    "CommunityCalibration",
    "CurveUsed",
    "EntryChannel",
    "EntryOrigin",
    "EntrySignals",
    "EntryVectors",
    "KnowledgeBase",
    "KnowledgeEntry",
    "KnowledgeIndex",
    "KnowledgeRepository",
    "Match",
    "Reply",
    "Source",
    "StoredEntry",
    "curve_for",
    "embed_entries",
    "mined_entry_id",
    "reply_from",
]
