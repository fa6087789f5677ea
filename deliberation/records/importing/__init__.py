"""Importing EuroCon / PoliCon record files, one module per job (nothing here writes; the write
is records.services.records_import_plan, in one transaction):

    sources.py   find and read the JSON documents: files, folders, zip archives, within limits
    schema.py    what a valid record, stance and task looks like (pydantic)
    planner.py   import_plan: validate every entry and build the plan
    merge.py     one record from several files, by content hash; conflicts reported
    plan.py      the plan's records, stances and tasks, and its totals
    report.py    what was kept, skipped and why, as data and as a text table

records/howtheyvote.py plans HowTheyVote.eu's CSV export into the same plan and report.
"""
