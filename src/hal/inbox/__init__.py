"""The web inbox for agents: its pages and form actions, login sessions and the merge
screen. Templates and static files are in hal/web."""
