"""run-tagger: tag OpenAI-style Assistants runs through Portkey and publish the result to EventBridge."""

__version__ = "0.1.0"
