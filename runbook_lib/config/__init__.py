"""Configuration: the params of an environment and its connections.

URLs come from environment variables the params name, and are never shown.
"""
