"""The relationship-manager console (Streamlit): find a decision, explain it in plain words,
show the customer's profile, compare it with all / similar customers, score a new application.

``data`` reads Redis, the model registry and the worker; ``views`` renders one screen each;
``charts`` builds the Plotly figures; ``app`` is the Streamlit entry script.
"""
