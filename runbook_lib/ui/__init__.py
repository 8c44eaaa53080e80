"""What only a person in JupyterLab sees.

Widgets, progress bars and the mapping preview.
"""
