"""Serving: a trained model over HTTP (`app.py`: the FastAPI app and `serve`). Needs the serve extra:
pip install 'mnistlab[serve]'. Static files for pages served beside the API go in this package too, as
package data.
"""

from mnistlab.serve.app import SERVER_LIMITS, create_app, describe_predictor, serve

__all__ = ["SERVER_LIMITS", "create_app", "describe_predictor", "serve"]
