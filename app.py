"""Start the web app: `python app.py` (the same as `lstm-demo serve`); settings come from the environment."""

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported

from lstm_demo.ui import launch  # noqa: E402

if __name__ == "__main__":
    launch()
