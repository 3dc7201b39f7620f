"""hwprof.symbolize"""
