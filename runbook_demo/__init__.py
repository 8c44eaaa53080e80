"""The demo scenario, kept out of the library.

Two legacy shops and an old CRM with planted defects, and the new platform's schema. Imported
only by ``runbook demo-data`` and the tests, never by ``runbook_lib``.
"""
