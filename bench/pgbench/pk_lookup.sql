\set id random(1, :operators)
SELECT * FROM operators WHERE id = :id;
