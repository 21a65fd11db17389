"""The message broker as it really runs: producers, keyed partitions or queues, consumer groups.

:mod:`~sim.model.broker.core` is the broker a coordinator publishes through;
:mod:`~sim.model.broker.groups` the consumer groups its services read with;
:mod:`~sim.model.broker.keys` where events go.
"""

from sim.model.broker.core import MessageBroker
from sim.model.broker.groups import Group

__all__ = ["Group", "MessageBroker"]
