"""Services hold the rules: validate -> authorise -> persist -> commit -> publish.

They take plain values and return plain values, so they are tested without HTTP.
"""
