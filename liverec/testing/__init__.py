"""Reusable contract suites: one pytest class per kind of component, run against every implementation.

* :mod:`liverec.testing.store_contract` — ``StoreContract`` for storage backends (events, items,
  vectors, and where a store lives);
* :mod:`liverec.testing.state_contract` — ``StateContract`` for user-state stores;
* :mod:`liverec.testing.feedback_contract` — ``FeedbackLogContract`` for feedback logs;
* :mod:`liverec.testing.keystore_contract` — ``KeyStoreContract`` for API key stores;
* :mod:`liverec.testing.model_contract` — the suite for recommendation models;
* :mod:`liverec.testing.scorer_contract` — ``ScorerContract`` for the ranker's scorers;
* :mod:`liverec.testing.encoder_contract` — the suite for text encoders.

Subclass a contract in a test module and override its factory fixture. The suites import pytest,
so this package imports none of them itself.
"""

__all__ = [
    "encoder_contract",
    "feedback_contract",
    "keystore_contract",
    "model_contract",
    "scorer_contract",
    "state_contract",
    "store_contract",
]
