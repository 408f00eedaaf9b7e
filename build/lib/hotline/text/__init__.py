"""The text path: the SMS webhooks (``views``), what one incoming text means and what is
texted back (``conversations``), and its words from ivr_flows/sms.yaml (``words``).
"""
