"""The console: a server-rendered web app (Jinja2 + htmx, charts as inline SVG) the gateway
serves under `/console`, and the offline OpenAPI page at `/docs` (`routes.mount`)."""
