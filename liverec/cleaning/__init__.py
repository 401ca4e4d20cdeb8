"""Cleaning: the stage between storing events and learning from them (issue 19).

Duplicates collapse, robotic users and spam reviews are quarantined (stored, kept from learning,
released by an admin), and everything learning reads goes through :class:`CleanLog`.
See docs/cleaning.md for the rules, their defaults and what they cost.
"""

from liverec.cleaning.rules import BotDetector, Duplicates, duplicate_key
from liverec.cleaning.settings import CleaningSettings, cleaning_settings
from liverec.cleaning.stage import RULES, Cleaner, Screened
from liverec.cleaning.view import CleanLog, QuarantineView

__all__ = ["RULES", "BotDetector", "CleanLog", "Cleaner", "CleaningSettings", "Duplicates", "QuarantineView",
           "Screened", "cleaning_settings", "duplicate_key"]
