"""The annotation review loop with a real Label Studio: push, pull, status, ML backend.

* **push** uploads documents as tasks keyed by ``data.doc_id`` with the
  model's predictions as pre-annotations, cut to what the guide allows
  (:func:`caibao.annotations.without_guide_errors`), so that accepting them
  unchanged passes the pull. Each prediction carries the model's
  ``model_version`` (``caibao-<config name>-<first 12 hex of the sha256 of
  the weights file>``) and a per-document ``score``. Pushing again creates no
  second task for a document and replaces the predictions of the same model
  version instead of adding to them. The project must exist unless
  ``create`` is given (a typo must not start a new project).
* **locks**: push and pull of one project run one at a time on a machine
  (a lock file in the user's cache); pushes from two machines that race are
  cleaned up by the next push (:func:`remove_duplicate_tasks`).
* **uncertainty** (``--order uncertainty``): a document's uncertainty is
  ``max(1 - p_min, H)`` where ``p_min`` is the lowest probability among the
  model's decisions in the document (entity spans: mean over the span's
  tokens of the winning tag's probability; relations: the probability of the
  chosen label) and ``H`` is the mean token entropy of the BIO tagger
  divided by ``ln(number of tags)``, so both parts lie in [0, 1] and a
  document with no predicted entity but a hesitant tagger still ranks high.
  The prediction ``score`` sent to Label Studio is ``1 - uncertainty``, so
  reviewers can also sort by it in the Data Manager. With ``--limit N`` only
  a random sample of the candidates is ranked (:func:`ranking_pool`).
* **pull** exports every task, converts and validates the submitted
  annotations (``check_document``; any error aborts the pull, naming the
  task and document, before anything is written) and merges them into the
  gold folder: a reviewed document replaces its line in whichever gold file
  holds it, new documents go to ``reviewed.jsonl``. An empty submitted
  result means "nothing to annotate": the document is merged with no
  entities. Cancelled (skipped) tasks stay queued and are counted. New
  documents also join the fixed splits (the split of their near-duplicate
  cluster, else train) when a ``splits.json`` is given, so that retraining
  sees them.
* **one commit point per pull** (:mod:`caibao.journal`): the gold files, the
  splits and the list of Label Studio updates that follow (each merged
  task's new ``base_hash``) are committed together; a pull killed at any
  point leaves the old state or a journal that the next pull (or any reader
  of the gold folder, for the files) finishes. The Label Studio updates are
  idempotent.
* **conflicts** are never merged silently: push stores in ``data.base_hash``
  the hash of the gold version of the document as it was when pushed (null
  when it was not gold yet); at pull time a local version whose hash differs
  is a local edit that the reviewer did not see. Two completed annotations
  of one task with different results are a reviewer conflict. Both are
  listed and skipped (the local file keeps its version, the review stays in
  Label Studio), and the CLI exits with 1; ``--take-review DOC`` merges a
  review over a local edit. After a merge the task's ``base_hash`` is moved
  to the merged version, and the merged document records the annotation ids
  and update times it came from and the hash of what was merged
  (``result_hash``), so pulling again is a no-op, a later edit of the
  annotation merges cleanly, and a stale ``base_hash`` on a gold line that is
  still exactly a merged review is repaired instead of reported.
* **serve-ml** is a small Label Studio ML backend (``GET /health``,
  ``POST /setup``, ``POST /predict``, ``POST /webhook``); annotation events
  enqueue a retraining command in a background thread (off unless a
  command is configured; requests never wait for it).

The Label Studio URL and API key come from arguments or the environment
(``LABEL_STUDIO_URL``, ``LABEL_STUDIO_API_KEY``), never from files, and the
key never appears in a message: every error is passed through :func:`mask`.

One module per concern: ``connection``, ``predictions``, ``records``, ``pushing``, ``pulling``, ``progress``, ``backend``.
"""

from __future__ import annotations

from caibao.review.connection import (  # noqa: F401
    API_KEY_ENV,
    Connection,
    ReviewError,
    URL_ENV,
    describe_error,
    held,
    is_loopback_url,
    ls_call,
    mask,
    project_lock,
)
from caibao.review.predictions import (  # noqa: F401
    ModelPredictor,
    Predictor,
    document_uncertainty,
    model_version_of,
    prediction_payload,
    weights_hash,
)
from caibao.review.records import (  # noqa: F401
    GoldEntry,
    GoldFolder,
    REVIEWED_FILE,
    REVIEW_METHOD,
    task_doc_id,
    annotation_key,
    document_hash,
    export_tasks,
    find_project,
    list_tasks,
    open_project,
    renumber,
    require_project,
)
from caibao.review.pushing import (  # noqa: F401
    POOL_PER_PUSHED,
    PushReport,
    order_by_uncertainty,
    push,
    ranking_pool,
    remove_duplicate_tasks,
    select_documents,
)
from caibao.review.pulling import (  # noqa: F401
    Conflict,
    PullReport,
    check_export,
    completed_annotations,
    assign_splits,
    pull,
    read_splits,
    result_hash,
)
from caibao.review.progress import (  # noqa: F401
    status,
)
from caibao.review.backend import (  # noqa: F401
    MLBackend,
    MLServer,
    RETRAIN_ACTIONS,
    Retrainer,
    connect_backend,
    make_ml_server,
    predict_tasks,
    retrain_command,
)
