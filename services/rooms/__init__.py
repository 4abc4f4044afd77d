"""Rooms: departments (virtual offices, opening hours, roster) and consultations."""
