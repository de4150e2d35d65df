"""Every telemetry name agentwatch emits: span names, attribute keys, metric names, units, buckets, log events.

The one place that knows OpenTelemetry names. A change of convention is an edit here and nowhere else.
GenAI names follow the OpenTelemetry GenAI semantic conventions (``SCHEMA_URL``); names the conventions
do not define (run totals, cost, budgets, rollout) are vendor-prefixed ``agentwatch.*`` so that backends
that sum ``gen_ai.usage.*`` over spans never double count.

The Prometheus series each metric becomes (dots to underscores, ``s`` to ``_seconds``, ``{...}`` units
dropped, counters ``_total``) are listed beside it; dashboards and alert rules query those.
"""

from __future__ import annotations

from typing import Final

SCHEMA_URL: Final = "https://opentelemetry.io/schemas/gen-ai/1.42.0"
INSTRUMENTATION_SCOPE: Final = "agentwatch"

PROVIDER_ANTHROPIC: Final = "anthropic"

# --- operations and span names -------------------------------------------------------------------
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_CHAT: Final = "chat"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_EVALUATE: Final = "evaluate"
OP_SHADOW: Final = "shadow"


def agent_span_name(agent_name: str) -> str:
    """``invoke_agent {gen_ai.agent.name}``."""
    return f"{OP_INVOKE_AGENT} {agent_name}"


def chat_span_name(model: str) -> str:
    """``chat {gen_ai.request.model}``."""
    return f"{OP_CHAT} {model}"


def tool_span_name(tool_name: str) -> str:
    """``execute_tool {gen_ai.tool.name}``."""
    return f"{OP_EXECUTE_TOOL} {tool_name}"


def evaluate_span_name(case_id: str) -> str:
    """``evaluate {case id}``: one eval case; the runs it makes are its children."""
    return f"{OP_EVALUATE} {case_id}"


def shadow_span_name(agent_name: str) -> str:
    """``shadow {gen_ai.agent.name}``: a candidate's shadow run, linked to the primary run."""
    return f"{OP_SHADOW} {agent_name}"


# --- GenAI attributes (semantic conventions) -----------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_DESCRIPTION: Final = "gen_ai.agent.description"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
GEN_AI_EVALUATION_NAME: Final = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"
# Content: opt-in only (see telemetry.content).
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
CONTENT_ATTRIBUTES: Final = (
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_SYSTEM_INSTRUCTIONS,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_RESULT,
)

TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"
TOOL_TYPE_FUNCTION: Final = "function"

# --- general attributes ----------------------------------------------------------------------------
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"

# --- agentwatch attributes (vendor-prefixed: no convention exists, or run totals) -----------------
AW_AGENT_VERSION: Final = "agentwatch.agent.version"
AW_RUN_STOP_REASON: Final = "agentwatch.run.stop_reason"
AW_RUN_STOP_DETAIL: Final = "agentwatch.run.stop_detail"
AW_RUN_ITERATIONS: Final = "agentwatch.run.iterations"
AW_RUN_TOOL_CALLS: Final = "agentwatch.run.tool_calls"
AW_RUN_INPUT_TOKENS: Final = "agentwatch.run.input_tokens"
AW_RUN_OUTPUT_TOKENS: Final = "agentwatch.run.output_tokens"
AW_RUN_CACHE_READ_TOKENS: Final = "agentwatch.run.cache_read_tokens"
AW_RUN_CACHE_WRITE_TOKENS: Final = "agentwatch.run.cache_write_tokens"
AW_RUN_COST_USD: Final = "agentwatch.run.cost_usd"
AW_RUN_MODELS: Final = "agentwatch.run.models"
AW_BUDGET_KIND: Final = "agentwatch.budget.kind"
AW_BUDGET_ITERATIONS_LIMIT: Final = "agentwatch.budget.iterations.limit"
AW_BUDGET_TOKENS_LIMIT: Final = "agentwatch.budget.tokens.limit"
AW_BUDGET_TOKENS_REMAINING: Final = "agentwatch.budget.tokens.remaining"
AW_BUDGET_COST_LIMIT_USD: Final = "agentwatch.budget.cost_usd.limit"
AW_BUDGET_COST_REMAINING_USD: Final = "agentwatch.budget.cost_usd.remaining"
AW_BUDGET_TIMEOUT_S: Final = "agentwatch.budget.timeout_s"
AW_CALL_COST_USD: Final = "agentwatch.call.cost_usd"
AW_CALL_ATTEMPTS: Final = "agentwatch.call.attempts"
AW_CALL_ITERATION: Final = "agentwatch.call.iteration"
AW_MODEL_TIER: Final = "agentwatch.model.tier"
AW_MODEL_ROUTE_REASON: Final = "agentwatch.model.route_reason"
AW_TOOL_OUTCOME: Final = "agentwatch.tool.outcome"
AW_TOOL_ATTEMPTS: Final = "agentwatch.tool.attempts"
AW_TOOL_TIMEOUT_S: Final = "agentwatch.tool.timeout_s"  # on the overrun event: the limit it ran past
AW_TOOL_DURATION_S: Final = "agentwatch.tool.duration_s"  # on the overrun event: how long it really ran
AW_RETRY_ATTEMPT: Final = "agentwatch.retry.attempt"
AW_RETRY_WAIT_S: Final = "agentwatch.retry.wait_s"
AW_EVAL_DATASET: Final = "agentwatch.eval.dataset"
AW_EVAL_CASE: Final = "agentwatch.eval.case"
AW_EVAL_OUTCOME: Final = "agentwatch.eval.outcome"
AW_ROLLOUT_ROLE: Final = "agentwatch.rollout.role"
AW_ROLLOUT_STABLE_VERSION: Final = "agentwatch.rollout.stable_version"
AW_ROLLOUT_CANDIDATE_VERSION: Final = "agentwatch.rollout.candidate_version"
AW_ROLLOUT_GUARD: Final = "agentwatch.rollout.guard"
AW_CANARY_STEP: Final = "agentwatch.canary.step"  # index of the ramp step (0 = the first)
AW_CANARY_SHARE: Final = "agentwatch.canary.share"  # share of keys the candidate gets at that step
AW_CANARY_STORE_POLICY: Final = "agentwatch.canary.store_policy"  # "stable" or "local"
AW_SHADOW_ANSWER_SIMILARITY: Final = "agentwatch.shadow.answer_similarity"
AW_SHADOW_TOOLS_MATCH: Final = "agentwatch.shadow.tools_match"
AW_SHADOW_STOP_REASON_MATCH: Final = "agentwatch.shadow.stop_reason_match"
AW_SHADOW_COST_DELTA_USD: Final = "agentwatch.shadow.cost_delta_usd"
AW_SHADOW_LATENCY_DELTA_S: Final = "agentwatch.shadow.latency_delta_s"
# Serve (HTTP server span attributes): the caller's tenant (never a metric label: cardinality), the run id,
# and request metadata keys allow-listed by AGENTWATCH_SERVE_METADATA_ATTRIBUTES (prefix + key).
AW_TENANT: Final = "agentwatch.tenant"
AW_SERVE_RUN_ID: Final = "agentwatch.serve.run_id"
AW_REQUEST_METADATA_PREFIX: Final = "agentwatch.request.metadata."
# Queue (agentwatch.queue): on the Celery consumer span of a job.
AW_QUEUE_WAIT_S: Final = "agentwatch.queue.wait_s"  # submit to the start of the delivery that runs it
AW_QUEUE_DELIVERY: Final = "agentwatch.queue.delivery"  # 1 for the first delivery of a job
MESSAGING_DESTINATION_NAME: Final = "messaging.destination.name"  # the queue
MESSAGING_MESSAGE_ID: Final = "messaging.message.id"  # the run id
MESSAGING_SYSTEM: Final = "messaging.system"
MESSAGING_OPERATION_TYPE: Final = "messaging.operation.type"
# Serverless (agentwatch.serverless), FaaS semantic conventions. Span attributes:
FAAS_TRIGGER: Final = "faas.trigger"  # http | pubsub | other
FAAS_INVOCATION_ID: Final = "faas.invocation_id"
FAAS_COLDSTART: Final = "faas.coldstart"
CLOUD_RESOURCE_ID: Final = "cloud.resource_id"  # the function ARN
CLOUD_ACCOUNT_ID: Final = "cloud.account.id"
HTTP_REQUEST_METHOD: Final = "http.request.method"
URL_PATH: Final = "url.path"
AW_FAAS_DEADLINE_S: Final = "agentwatch.faas.run_deadline_s"  # the run's timeout the invocation left it
# Resource attributes:
CLOUD_PROVIDER: Final = "cloud.provider"
CLOUD_PLATFORM: Final = "cloud.platform"
CLOUD_REGION: Final = "cloud.region"
FAAS_NAME: Final = "faas.name"
FAAS_VERSION: Final = "faas.version"
FAAS_INSTANCE: Final = "faas.instance"
FAAS_MAX_MEMORY: Final = "faas.max_memory"  # bytes
TRIGGER_HTTP: Final = "http"
TRIGGER_PUBSUB: Final = "pubsub"
TRIGGER_OTHER: Final = "other"

# Fleet guards (agentwatch.fleet): metric labels and span event attributes.
AW_FLEET_GUARD: Final = "agentwatch.fleet.guard"  # tenant_budget | rate_limit | circuit
AW_FLEET_POLICY: Final = "agentwatch.fleet.policy"  # fail_open | fail_closed
AW_BUDGET_PERIOD: Final = "agentwatch.budget.period"  # day | month
AW_RATE_LIMIT_WAIT_S: Final = "agentwatch.rate_limit.wait_s"
AW_CIRCUIT_STATE: Final = "agentwatch.circuit.state"  # closed | half_open | open
GUARD_TENANT_BUDGET: Final = "tenant_budget"
GUARD_RATE_LIMIT: Final = "rate_limit"
GUARD_CIRCUIT: Final = "circuit"
CIRCUIT_CLOSED: Final = "closed"
CIRCUIT_HALF_OPEN: Final = "half_open"
CIRCUIT_OPEN: Final = "open"
# agentwatch.circuit.state gauge values, per state above.
CIRCUIT_STATE_VALUES: Final = {CIRCUIT_CLOSED: 0, CIRCUIT_HALF_OPEN: 1, CIRCUIT_OPEN: 2}

# Values of agentwatch.rollout.role.
ROLE_PRIMARY: Final = "primary"
ROLE_SHADOW: Final = "shadow"
ROLE_STABLE: Final = "stable"
ROLE_CANARY: Final = "canary"

# Tool outcomes (low cardinality metric label values).
TOOL_OK: Final = "ok"
TOOL_ERROR: Final = "error"
TOOL_TIMEOUT: Final = "timeout"
TOOL_INVALID_INPUT: Final = "invalid_input"
TOOL_UNKNOWN: Final = "unknown_tool"

# Why a job was dead-lettered (error.type of agentwatch.queue.dead_letters).
DEAD_POISON: Final = "poison"  # delivered max_deliveries times without finishing
DEAD_UNSERVED_AGENT: Final = "unserved_agent"  # names an agent the worker does not serve
DEAD_INVALID_JOB: Final = "invalid_job"
DEAD_RETRIES_EXHAUSTED: Final = "retries_exhausted"  # infrastructure errors on every retry
DEAD_TIME_LIMIT: Final = "time_limit"  # past the soft time limit
DEAD_CRASH: Final = "crash"  # an exception outside the runner

# --- span events ---------------------------------------------------------------------------------
EVENT_RETRY: Final = "agentwatch.retry"
EVENT_BUDGET_WARNING: Final = "agentwatch.budget_warning"
EVENT_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
EVENT_ROLLBACK: Final = "agentwatch.rollout.rollback"
EVENT_CANARY_STEP: Final = "agentwatch.rollout.step"  # a ramp step passed its guards: the next share
# The conventions' exception event (agentwatch builds it itself, so every field is redacted).
EVENT_EXCEPTION: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"
EVENT_CIRCUIT_STATE: Final = "agentwatch.circuit.state_change"  # a fleet circuit breaker changed state
EVENT_RATE_LIMIT_WAIT: Final = "agentwatch.rate_limit.wait"  # a call waited for shared rate-limit capacity
EVENT_TOOL_OVERRUN: Final = "agentwatch.tool.overrun"  # ran past its timeout: a blocking async or an inline tool

# --- metrics: (name, unit); Prometheus series in the comment -------------------------------------
# Semantic-convention metrics.
M_TOKEN_USAGE: Final = ("gen_ai.client.token.usage", "{token}")  # gen_ai_client_token_usage_{bucket,sum,count}
M_OPERATION_DURATION: Final = ("gen_ai.client.operation.duration", "s")
# -> gen_ai_client_operation_duration_seconds_{bucket,sum,count}
M_TIME_TO_FIRST_CHUNK: Final = ("gen_ai.client.operation.time_to_first_chunk", "s")
# -> gen_ai_client_operation_time_to_first_chunk_seconds_{bucket,sum,count}
M_TOOL_DURATION: Final = ("gen_ai.execute_tool.duration", "s")  # gen_ai_execute_tool_duration_seconds_*
# agentwatch metrics.
M_RUNS: Final = ("agentwatch.runs", "{run}")  # agentwatch_runs_total
M_RUN_DURATION: Final = ("agentwatch.run.duration", "s")  # agentwatch_run_duration_seconds_*
M_RUN_COST: Final = ("agentwatch.run.cost.usd", "{USD}")  # agentwatch_run_cost_usd_{bucket,sum,count}
M_SPEND: Final = ("agentwatch.spend.usd", "{USD}")  # agentwatch_spend_usd_total
M_RUN_ITERATIONS: Final = ("agentwatch.run.iterations", "{iteration}")  # agentwatch_run_iterations_*
M_TOOL_CALLS: Final = ("agentwatch.tool.calls", "{call}")  # agentwatch_tool_calls_total
M_RETRIES: Final = ("agentwatch.retries", "{retry}")  # agentwatch_retries_total
M_TOOL_RETRIES: Final = ("agentwatch.tool.retries", "{retry}")  # agentwatch_tool_retries_total
M_BUDGET_STOPS: Final = ("agentwatch.budget.stops", "{run}")  # agentwatch_budget_stops_total
M_TELEMETRY_ERRORS: Final = ("agentwatch.telemetry.errors", "{error}")  # agentwatch_telemetry_errors_total
M_COUNT_TOKENS_FALLBACKS: Final = ("agentwatch.count_tokens.fallbacks", "{fallback}")
# -> agentwatch_count_tokens_fallbacks_total
M_EVAL_RESULTS: Final = ("agentwatch.eval.results", "{case}")  # agentwatch_eval_results_total
M_SHADOW_RUNS: Final = ("agentwatch.shadow.runs", "{run}")  # agentwatch_shadow_runs_total
M_SHADOW_SIMILARITY: Final = ("agentwatch.shadow.answer_similarity", "1")
# -> agentwatch_shadow_answer_similarity_ratio_*  (unit "1" becomes _ratio)
M_SHADOW_SPEND: Final = ("agentwatch.shadow.spend.usd", "{USD}")  # agentwatch_shadow_spend_usd_total
M_CANARY_ROLLBACKS: Final = ("agentwatch.canary.rollbacks", "{rollback}")  # agentwatch_canary_rollbacks_total
M_CANARY_STEPS: Final = ("agentwatch.canary.step", "{step}")  # agentwatch_canary_step_total (ramp promotions)
M_CANARY_STORE_ERRORS: Final = ("agentwatch.canary.store.errors", "{error}")
# -> agentwatch_canary_store_errors_total: the shared canary store (Redis) failed; the policy applied
# Queue metrics (agentwatch.queue), labelled messaging_destination_name.
M_QUEUE_DEPTH: Final = ("agentwatch.queue.depth", "{job}")  # agentwatch_queue_depth (observable gauge)
M_QUEUE_OLDEST_AGE: Final = ("agentwatch.queue.oldest_job.age", "s")  # agentwatch_queue_oldest_job_age_seconds
M_QUEUE_WAIT: Final = ("agentwatch.queue.wait.duration", "s")  # agentwatch_queue_wait_duration_seconds_*
M_QUEUE_DEAD_LETTERS: Final = ("agentwatch.queue.dead_letters", "{job}")  # agentwatch_queue_dead_letters_total
# Fleet guards (agentwatch.fleet). Tenant gauges are labelled agentwatch_tenant and agentwatch_budget_period
# (one series per tenant with a fleet budget: the budgets configured bound the cardinality).
M_FLEET_STORE_ERRORS: Final = ("agentwatch.fleet.store_errors", "{error}")  # agentwatch_fleet_store_errors_total
M_TENANT_SPEND: Final = ("agentwatch.tenant.spend.usd", "{USD}")  # agentwatch_tenant_spend_usd (gauge)
M_TENANT_BUDGET_LIMIT: Final = ("agentwatch.tenant.budget.limit.usd", "{USD}")  # agentwatch_tenant_budget_limit_usd
M_TENANT_BUDGET_REMAINING: Final = ("agentwatch.tenant.budget.remaining.usd", "{USD}")
# -> agentwatch_tenant_budget_remaining_usd (gauge)
M_RATE_LIMIT_WAIT: Final = ("agentwatch.rate_limit.wait.duration", "s")
# -> agentwatch_rate_limit_wait_duration_seconds_{bucket,sum,count}; labelled gen_ai_request_model
M_CIRCUIT_STATE: Final = ("agentwatch.circuit.state", "{state}")
# -> agentwatch_circuit_state (gauge: 0 closed, 1 half-open, 2 open); gen_ai_request_model, server_address

# Bucket boundaries. Token and duration buckets are the conventions' advice.
TOKEN_BUCKETS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
RUN_DURATION_BUCKETS: Final = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640)
COST_BUCKETS: Final = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SIMILARITY_BUCKETS: Final = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
ITERATION_BUCKETS: Final = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50)
QUEUE_WAIT_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

# --- structured log events (the ``event`` field of every JSON record) ------------------------------
LOGGER_NAME: Final = "agentwatch"
LOG_RUN_START: Final = "run_start"
LOG_LLM_CALL: Final = "llm_call"
LOG_RETRY: Final = "retry"
LOG_TOOL_CALL: Final = "tool_call"
LOG_TOOL_RESULT: Final = "tool_result"
LOG_TOOL_RETRY: Final = "tool_retry"
LOG_BUDGET_WARNING: Final = "budget_warning"
LOG_BUDGET_EXCEEDED: Final = "budget_exceeded"
LOG_ROUTE: Final = "model_route"
LOG_RUN_END: Final = "run_end"
LOG_TELEMETRY_ERROR: Final = "telemetry_error"
LOG_COUNT_TOKENS_FALLBACK: Final = "count_tokens_fallback"
LOG_TOOL_OVERRUN: Final = "tool_overrun"
LOG_EVAL_RESULT: Final = "eval_result"
LOG_SHADOW_RESULT: Final = "shadow_result"
LOG_CANARY_ROLLBACK: Final = "canary_rollback"
LOG_CANARY_PROMOTE: Final = "canary_promote"
LOG_CANARY_STEP: Final = "canary_step"
LOG_CANARY_STORE_DOWN: Final = "canary_store_unavailable"
LOG_CANARY_STORE_UP: Final = "canary_store_recovered"
LOG_SERVE_DRAIN_START: Final = "serve_drain_start"
LOG_SERVE_DRAIN_END: Final = "serve_drain_end"
LOG_FLEET_STORE_UNAVAILABLE: Final = "fleet_store_unavailable"
LOG_CIRCUIT_STATE: Final = "circuit_state"
LOG_INFERENCE_DETAILS: Final = "gen_ai.client.inference.operation.details"  # opt-in content event
