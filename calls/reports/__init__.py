"""What the figures say: campaign stats, the results CSV, the dashboard's figures and its charts.

Read-only; may import calls.models only.
"""
