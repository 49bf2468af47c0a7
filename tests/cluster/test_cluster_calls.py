"""End-to-end calls on a real 3-master Redis Cluster: the tests below are the ones of tests/e2e,
imported unchanged; this folder's conftest gives them a platform whose services all run with
REDIS_CLUSTER=true against `frontdesk.local_cluster`, and fails any of them if a command
crossed hash slots.

Chosen for what they exercise on the cluster, at a small cost in `make test` (the folder
takes ~2 minutes on a quiet 2-core box, ~4 under load, on one xdist worker): three booking
calls (mux reads, the brain's and tools' work queues, work items published after their
events, the recorder), a barge-in call (clear, marks, the heard history), kill -9 of a media
replica mid-call (after-stream resume on the other replica, stream guard and live keys, the
`call.ended`-once Lua script), kill -9 of the recorder (reclaim, resume from the cursor), and
a call whose stream never starts (the reaper's script, which refuses while the call is live).
"""

from __future__ import annotations

import pytest

from tests.e2e.media_pair import media_pair
from tests.e2e.test_booking_calls import (
    daves_caldav,
    llm,
    sessions,
    test_book_then_reschedule_then_cancel,
)
from tests.e2e.test_call_ended_always import test_a_call_whose_stream_never_starts_ends_no_stream
from tests.e2e.test_conversation_timeline import (
    test_barge_in_clears_and_history_holds_only_what_was_heard,
)
from tests.e2e.test_media_failover import test_kill_9_mid_reply_resumes_and_speaks_the_reply
from tests.e2e.test_recorder_crash import (
    test_recorder_killed_mid_call_loses_and_duplicates_nothing,
)

pytestmark = pytest.mark.e2e

__all__ = [  # collected here, on the cluster platform (fixtures first)
    "daves_caldav",
    "llm",
    "media_pair",
    "sessions",
    "test_a_call_whose_stream_never_starts_ends_no_stream",
    "test_barge_in_clears_and_history_holds_only_what_was_heard",
    "test_book_then_reschedule_then_cancel",
    "test_kill_9_mid_reply_resumes_and_speaks_the_reply",
    "test_recorder_killed_mid_call_loses_and_duplicates_nothing",
]
