"""Hand-written SQL for the hot paths: prepared statements and batches of rows as one table.

Imports nothing from the apps: Django's connection only.
"""
