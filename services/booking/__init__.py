"""Booking: appointment schedules per department, slots with a capacity, appointments."""
