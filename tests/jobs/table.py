"""
INPUT = "csv" with CSV_HEADER: rows as dicts; the sum of "amount" per
"city".
"""

INPUT = "csv"
CSV_HEADER = True


def map(filename, row):
    yield row["city"], float(row["amount"])


def reduce(city, amounts):
    yield city, sum(amounts)
