"""Start the web app: `python app.py` (the same as `lstm-demo serve`); settings come from the environment."""

from lstm_demo.ui import launch

if __name__ == "__main__":
    launch()
