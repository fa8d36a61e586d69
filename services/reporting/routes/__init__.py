"""The HTTP routes of the reporting service, one router per resource; each route validates its
parameters, calls one use case of service.py and renders its answer."""
