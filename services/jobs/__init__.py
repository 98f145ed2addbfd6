"""Batch training jobs: a store of job records, a runner per job kind, and two backends that execute them.

store.py       job records and their log lines in the registry's database (SQLAlchemy Core)
kinds.py       what each job kind (word2vec, classifier, compare, lm, compare_lm, collection) validates and runs
inputs.py      input files a job may read: catalogue names, paths under the data root, uploads
runner.py      runs one claimed job in a child process, reporting progress to the store
supervisor.py  claims a job, watches its child process (heartbeats, cancellation, crashes)
reaper.py      fails running jobs whose worker went silent; removes what they left behind
local.py       the embedded backend: worker processes on this machine polling the database
celery_app.py  the Celery backend: a Redis queue shared by workers on any number of machines
backend.py     the interface both backends share, and the choice between them
public.py      a job as the API answers it and the CLI prints it
"""
