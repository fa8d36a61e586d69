"""Infrastructure adapters shared by the services: HTTP problems and metrics, Kafka administration, polling."""
