"""Blueprints: the HTTP edge. Views parse, call one service and render."""
