"""The contact lifecycle: every state change of a contact, an offer and a callback request.

- the states are str Enums in ``hotline.models.states`` (modes, states, outcomes, consent
  values, event kinds: their values are what the database and the statistics hold).
- ``routing``: who is offered next: round-robin (least recently offered first) and the
  atomic reservation of a supporter, one conditional ``UPDATE ... RETURNING``.
- ``transitions``: each state change, a conditional UPDATE plus its event plus forgetting
  the number where due; it returns the *effects* it needs (``effects``) as data.
- ``effects``: the one place that turns effects into RQ jobs, after the commit, by the
  jobs' dotted names: nothing in ``hotline`` imports ``workers``.
- ``contacts``: the primitives of a contact's life (created, queued, connected, ended; one
  outcome each) that the transitions are made of.
- ``outbound``: texting a number and hanging up a call, for the jobs and the auditor.
"""
