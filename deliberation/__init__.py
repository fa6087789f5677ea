# Kept free of imports: deliberation.engine must import where Django and Celery are not installed.
# The Celery app is loaded when Django starts (deliberation.runs.apps).
