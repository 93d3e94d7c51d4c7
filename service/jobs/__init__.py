"""Batch jobs: many files analysed by workers through a Redis queue (RQ).

``submission`` and ``archives`` turn an upload into files, ``store`` keeps jobs, audio and
outcomes in Redis (atomic updates in ``scripts``), ``tasks`` are what workers run (the same
``service.pipeline.analyse`` as ``POST /predict``), ``worker`` is ``python -m service.jobs.worker``,
``embedded`` and ``supervisor`` give ``python -m service`` its own Valkey and workers.
"""
