module muon

go 1.26.8
