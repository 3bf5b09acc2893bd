"""cssnn.hw"""
