"""cssnn.boards"""
