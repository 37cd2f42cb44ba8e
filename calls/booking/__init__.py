"""Booked calls: one-off or recurring calls to one contact at a set time, their editing and API.

May import calls.models (its API door also calls.api's serializers); the tick imports it,
not the reverse.
"""
