"""Stage 4, reports: the summary, APA tables, typeset equations, exports and figures.

Reports only format what the results and the analyses computed.
"""
