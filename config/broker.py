"""The embedded broker: kombu's SQLAlchemy transport, plus bindings shared between processes.

Kombu's SQLAlchemy transport keeps exchange bindings in each process's memory, so broadcast
(fanout) messages and replies never reach another process: `celery inspect ping` and every
remote-control command go unanswered. This transport stores the bindings in the broker's own
database, as kombu's Redis transport stores them in Redis, and delivers fanout messages to every
bound queue. `config.celery_app` registers it under kombu's `sqla` alias, so the
`sqla+sqlite://` URL uses it.
"""

from __future__ import annotations

from kombu.transport import sqlalchemy as sqla
from kombu.transport.sqlalchemy.models import ModelBase
from sqlalchemy import Column, String, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


class Binding(ModelBase):
    __tablename__ = "kombu_binding"

    exchange = Column(String(200), primary_key=True)
    routing_key = Column(String(200), primary_key=True)
    pattern = Column(String(200), default="")
    queue = Column(String(200), primary_key=True)


class Channel(sqla.Channel):
    supports_fanout = True

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        row = {"exchange": exchange, "routing_key": routing_key or "", "pattern": pattern or "", "queue": queue}
        if self.session.bind.dialect.name == "sqlite":
            statement = sqlite_insert(Binding).values(**row).on_conflict_do_nothing()
        else:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            statement = pg_insert(Binding).values(**row).on_conflict_do_nothing()
        self.session.execute(statement)
        self.session.commit()

    def get_table(self, exchange):
        rows = self.session.execute(
            select(Binding.routing_key, Binding.pattern, Binding.queue).where(Binding.exchange == exchange)
        ).all()
        self.session.commit()
        local = super().get_table(exchange) if exchange in self.state.exchanges else []
        return list({(r.routing_key, r.pattern, r.queue) for r in rows} | {tuple(m) for m in local})

    def _put_fanout(self, exchange, message, routing_key, **kwargs):
        for queue in {queue for _, _, queue in self.get_table(exchange)}:
            self._put(queue, message, **kwargs)

    def queue_delete(self, queue, *args, **kwargs):
        self.session.query(Binding).filter(Binding.queue == queue).delete()
        self.session.commit()
        return super().queue_delete(queue, *args, **kwargs)


class Transport(sqla.Transport):
    Channel = Channel
    # Celery starts a worker's remote-control mailbox only on transports that offer fanout.
    implements = sqla.Transport.implements.extend(exchange_type=frozenset(["direct", "topic", "fanout"]))
