"""The FastAPI application: word similarity, neighbours, analogies, classification, registry and jobs."""
