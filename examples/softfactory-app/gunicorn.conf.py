# gunicorn settings of the sample app's image. One worker with threads keeps the
# Prometheus counter in one process; graceful_timeout lets in-flight requests finish
# when the pod is stopped.
bind = "0.0.0.0:8000"
workers = 1
threads = 8
worker_class = "gthread"
graceful_timeout = 20
accesslog = None
errorlog = "-"
