"""Emails: Jinja2 templates (HTML with inline styles + plain text) and MIME building."""
