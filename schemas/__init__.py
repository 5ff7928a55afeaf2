"""gravitas.schemas"""
