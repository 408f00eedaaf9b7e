"""Staffing: coverage against demand and the advice for each hour of the week.

``erlang`` (Erlang C: the probability of waiting, the service level, the supporters a
target needs) and ``coverage`` (the 168 hours of the week: published demand, supporters on
shift, the advice and its marks, for the dashboard's coverage page and the coverage-gap
alert).
"""
