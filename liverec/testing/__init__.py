"""Reusable contract suites: one pytest class per kind of component, run against every implementation.

* :mod:`liverec.testing.store_contract` — ``StoreContract`` for storage backends;
* :mod:`liverec.testing.model_contract` — the suite for recommendation models.

Subclass a contract in a test module and override its factory fixture. The suites import pytest,
so this package imports none of them itself.
"""
