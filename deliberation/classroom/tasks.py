"""Celery tasks of classroom sessions: thin, each calls one service."""

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True)
def classroom_agent_turn_task(*, session_id: int, turn_key: str) -> None:
    """An agent's (or the judge's) turn; appended only if still due when computed."""
    from deliberation.classroom.services import classroom_agent_turn

    classroom_agent_turn(session_id=session_id, turn_key=turn_key)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def classroom_timer_task(*, session_id: int, deadline: str) -> None:
    """A phase's timer ran out (eta = deadline); advances if that phase is still current."""
    from deliberation.classroom.services import classroom_timer_expired

    classroom_timer_expired(session_id=session_id, deadline=deadline)
