"""gravitas.storage"""
