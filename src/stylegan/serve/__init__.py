"""`stylegan serve`: a browser-based explorer for trained generators.

renderer.py validates requests and renders them (plain PyTorch, no web code); app.py wraps it in a Starlette
app with a JSON API; static/ holds the page. See docs/explorer.md.
"""
