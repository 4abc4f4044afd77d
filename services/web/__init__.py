"""Pages and browser code for citizens, interpreters and staff.

Owns no domain state and calls no other service: every page is a server-rendered
shell (Jinja2, German and English via Babel) whose ES modules fetch the same-origin
JSON API (``/api/v1``) and follow live changes with ``EventSource``.
"""
