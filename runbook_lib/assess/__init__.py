"""The assessment of the sources, before anything moves.

Profiles, classification and the quality findings the mapping spec implies, computed in the
source databases.
"""
