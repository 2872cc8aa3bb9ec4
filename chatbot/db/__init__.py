"""Relational persistence: SQLModel tables, engine setup and the one repository that queries.

``models`` holds every table, ``engine`` builds a tuned engine and sessions, and ``repos``
is the only module that runs queries; callers use ``Repository`` and never touch a session.
"""
