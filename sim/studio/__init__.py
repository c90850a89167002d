"""The studio: a local web page to step through a replay, ask "what if", and save the answer.

``bwcsim studio [PATH...]`` serves it on 127.0.0.1. :mod:`.session` computes every answer (no
HTTP in it), :mod:`.app` is the Starlette JSON API over it, and ``static/`` holds the page:
plain HTML, CSS and JavaScript served from the package, with no build step and no URL outside
the studio itself.
"""
